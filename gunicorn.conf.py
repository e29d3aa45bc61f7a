"""gunicorn settings, read automatically from the working directory (Procfile, Dockerfile, compose).

https://docs.gunicorn.org/en/stable/settings.html#limit-request-line
The request line (method, path and query) may be as long as gunicorn allows (8190 bytes, up
from 4094): a longer one gets gunicorn's own 400 page before Django sees it, so under /api/
a client would read HTML instead of the JSON error body. Schemathesis found a 4.9 kB query.
"""

limit_request_line = 8190
