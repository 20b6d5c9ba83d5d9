"""`ratecard serve`: the engine over HTTP (Starlette, served by uvicorn). The only package that imports
them; the library and every other command run without either.

    from ratecard.http.app import ServeOptions, build_server, create_app
    app = create_app(build_server(ServeOptions(rules=("rules/<product>",), db="ratecard.db", tokens=...)))

`app` (the ASGI application and its routes per area in `routes/`), `auth` (bearer tokens and scopes),
`problems` (RFC 9457 problem documents, bounded body reading), `state` (rule sets reloaded on change,
the ledger and the status cache), `openapi` (the document, from the JSON Schemas in schemas/).
"""
