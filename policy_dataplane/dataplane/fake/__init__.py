"""An in-memory backend: the dataplane seam without a kernel (unit tests, and a template for new backends)."""
