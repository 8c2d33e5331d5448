int mcpx_shim_placeholder(void);
