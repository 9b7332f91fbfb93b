# Sourced by the scripts/setup-*.sh scripts: a Python virtual environment holding one pinned
# PyPI package, set up once and then only re-checked.
#
#   pinned_venv TAG PACKAGE VERSION DIR
#
# Leaves DIR alone when its `PACKAGE` already reports VERSION; otherwise creates the venv (if
# needed) and pip-installs PACKAGE==VERSION, then checks the version again. Messages go to
# stderr prefixed with `TAG:`. Needs python3 with the venv module, and PyPI.

pinned_venv() {
  local tag="$1" package="$2" version="$3" dir="$4"
  local installed
  installed="$(pinned_venv_version "$package" "$dir" || true)"
  if [[ "$installed" != "$version" ]]; then
    echo "$tag: installing $package==$version into $dir" >&2
    [[ -x "$dir/bin/python" ]] || python3 -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version" >&2
    if [[ "$(pinned_venv_version "$package" "$dir" || true)" != "$version" ]]; then
      echo "$tag: error: $package $version did not install into $dir" >&2
      return 1
    fi
  fi
  echo "$tag: $package $version ready in $dir" >&2
}

# The version of PACKAGE installed in the venv DIR (fails when there is none).
pinned_venv_version() {
  local package="$1" dir="$2"
  [[ -x "$dir/bin/python" ]] || return 1
  "$dir/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null
}
