#include "csandbox.h"
int main(int argc, char **argv){return mcpx_sandbox_main(argc, argv);}
