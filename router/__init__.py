"""preview-router: the stateless edge and the project's one HTTP/WebSocket proxy core."""
