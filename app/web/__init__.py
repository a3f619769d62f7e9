"""The web pages at /ui (docs/reference.md section 10), rendered from the same reads as the API
(`app.http.state`, `gitops.reads`) and refusing with the API's own status table
(`app.http.answers`):

    pages.py     the router of every page; destinations, a request, refused bundles, a commit
    promises.py  a promise's requests with their delivery, filtered and paged
    search.py    an object's owners, by kind and name
    history.py   the commits across requests, filtered by action and more
    login.py     the sign-in form; `sessions` signs the cookie it leaves
    access.py    who looks, and how a refusal becomes an error page (the route class)
    render.py    the templates, their filters and the pages' addresses

`templates/` and `static/` are what they are drawn with."""
