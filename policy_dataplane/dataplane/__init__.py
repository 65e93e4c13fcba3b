"""The dataplane: the host-program IR, its compiler, and the backends that put programs into the kernel."""
