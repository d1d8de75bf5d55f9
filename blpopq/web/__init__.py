"""``blpopq web``: a live dashboard of one namespace (the ``web`` extra: Starlette, uvicorn).

state.py reads Redis (at most once a second, whatever the number of browsers) and shapes
the page's JSON; actions.py runs the dead-letter and cancel commands; app.py is the HTTP
side and its guards; static/ holds the page, its script and style (no CDN).
"""
