// The sflow extension: starts `sflowc lsp` (the language server is all in the compiler; this
// file only wires it to VS Code) and shows the embedded standard library, which the server
// serves under `sflow-std:` URIs, as read-only documents.

import * as vscode from "vscode";
import {
  Executable,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  Trace,
} from "vscode-languageclient/node";

const STD_SCHEME = "sflow-std";

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(STD_SCHEME, {
      provideTextDocumentContent: async (uri) => {
        if (!client) {
          return "// the sflow language server is not running";
        }
        return client.sendRequest<string>("sflow/stdlibSource", { uri: uri.toString() });
      },
    }),
    vscode.commands.registerCommand("sflow.restartServer", async () => {
      await stop();
      await start(context);
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration("sflow.server") || event.affectsConfiguration("sflow.diagnostics")) {
        await stop();
        await start(context);
      }
    }),
  );
  await start(context);
}

export async function deactivate(): Promise<void> {
  await stop();
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("sflow");
  const command = config.get<string>("server.path", "sflowc") || "sflowc";
  const extraArgs = config.get<string[]>("server.extraArgs", []);
  const executable: Executable = { command, args: ["lsp", ...extraArgs] };
  const serverOptions: ServerOptions = { run: executable, debug: executable };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "sflow" },
      { scheme: "untitled", language: "sflow" },
      { scheme: STD_SCHEME, language: "sflow" },
    ],
    initializationOptions: {
      diagnosticsDelayMs: config.get<number>("diagnostics.delayMs", 0),
    },
  };
  client = new LanguageClient("sflow", "sflow language server", serverOptions, clientOptions);
  const trace = config.get<string>("trace.server", "off");
  try {
    await client.start();
    await client.setTrace(trace === "verbose" ? Trace.Verbose : trace === "messages" ? Trace.Messages : Trace.Off);
  } catch (error) {
    client = undefined;
    const choice = await vscode.window.showErrorMessage(
      `Could not start the sflow language server (\`${command} lsp\`): ${String(error)}. ` +
        "Install sflowc or set `sflow.server.path`.",
      "Open settings",
    );
    if (choice === "Open settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "sflow.server.path");
    }
    return;
  }
  context.subscriptions.push({ dispose: () => void stop() });
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}
