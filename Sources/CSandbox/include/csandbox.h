int mcpx_sandbox_main(int argc, char **argv);
