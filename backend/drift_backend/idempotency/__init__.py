"""``Idempotency-Key`` on the routes that create something: a retried request answers what
the first one answered instead of creating a second record.

The contract (``docs/api.md`` "Idempotency" explains it for API users):

- Routes: ``POST /experiment``, ``POST /experiment/{id}/drift``, ``POST /experiment/{id}/baseline``,
  ``POST /experiment/{id}/check``, ``PUT /experiment/{id}/permissions`` and ``POST /user``.
  Elsewhere the header is ignored (searches create nothing; PUT and DELETE are idempotent).
- A key is 1-255 printable ASCII characters, optionally written as a Structured Field string
  (``"..."``, as the IETF draft spells it); anything else is a 422 on field ``Idempotency-Key``.
- Keys belong to the verified caller (issuer + subject), never to the token string: a token
  refreshed between a request and its retry still finds the key. Anonymous or refused tokens
  pass through untouched and get the route's own 401/403.
- The first request with a key runs; a 2xx answer is kept with a fingerprint of the request
  (method, path, query, content type and body) for 24 hours. A repeat with the same
  fingerprint gets the kept answer plus ``Idempotent-Replayed: true``; another fingerprint is
  a 422. A repeat while the first still runs is a 409 with ``Retry-After``.
- Any other answer (4xx, which by the house rules changed nothing, and 5xx, which may be
  transient) releases the key, so a retry runs again.
"""
