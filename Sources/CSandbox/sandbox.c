#include "csandbox.h"
int mcpx_sandbox_main(int argc, char **argv){(void)argc;(void)argv;return 0;}
