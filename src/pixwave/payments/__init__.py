"""The payment transaction record, its status machine, and the money flows built on it."""
