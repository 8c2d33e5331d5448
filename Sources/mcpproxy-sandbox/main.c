// mcpproxy-sandbox: the sandbox launcher executable (see Sources/CSandbox and docs/sandbox.md).
#include "csandbox.h"

// The Swift driver links every executable with swiftrt.o, which registers the image with the
// Swift runtime. This program has no Swift code: these no-op definitions satisfy swiftrt.o, so
// (with -static-stdlib and --as-needed) no Swift runtime is linked or loaded, and the launcher
// starts as fast as a plain C program, which matters on every server spawn. Should a toolchain
// need more symbols, the runtime is linked again: slower, still correct. The launcher is linked
// with -static-executable (Package.swift): no dynamic loader runs in it, so no LD_* variable can
// inject code into it while it is still privileged.
void swift_addNewDSOImage(const void *sections) { (void)sections; }
int _swift_backtrace_isThunkFunction(const char *name) { (void)name; return 0; }

#include <string.h>

// `--env-file FILE -- command...`: the container entrypoint that turns a secret file into the
// server's environment (docs/security.md, "Secrets"); anything else: the sandbox launcher.
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--env-file") == 0) return mcpx_envfile_main(argc, argv);
    return mcpx_sandbox_main(argc, argv);
}
