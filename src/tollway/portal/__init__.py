"""The customer portal: sessions (bearer tokens scoped to one customer), the portal API
(``/v1/portal/...``, the customer's own data, self-service plan choice) and the ``/portal`` page."""
