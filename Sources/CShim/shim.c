#include "cshim.h"
int mcpx_shim_placeholder(void){return 0;}
