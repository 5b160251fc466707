"""preview: command-line client that uploads a folder as a preview session."""
