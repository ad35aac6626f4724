"""The server: the Gradio app, the JSON HTTP API, /v2 and the connection and upload guards."""
