"""The API provider's own details (company, invoice wording, portal theme): ``GET/PUT /v1/settings``.

Read them through :func:`tollway.settings.service.get_provider_settings` only."""
