"""The web pages at /ui (docs/reference.md section 10): `pages` renders them from the same reads as
the API (`app.http.state`) and refuses with the API's own status table (`app.http.answers`);
`sessions` signs browsers in; `templates/` and `static/` are what they are drawn with."""
