"""One module per command: options in, one call into the packages out."""
