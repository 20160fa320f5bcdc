"""The operators' console: server-rendered pages (``/console/...``) on the shared page stack
(:mod:`tollway.web`), behind an operator sign-in (:mod:`tollway.web.console.auth`).

Pages read the same service functions as the API, so their figures are the API's figures."""
