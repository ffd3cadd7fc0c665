"""notification-service settings (environment variables; docs/notifications.md lists them all)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from spawnpoint_kit.settings import CommonSettings

DEVELOPMENT_PANEL_KEY = "ptla_spawnpointdevkey0000000000000000000000000000"
"""The panel stand-in's seeded admin key (``sandbox/panel-fake``): refused in production."""
DEVELOPMENT_PANEL_URL = "http://127.0.0.1:8081"


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_notifications",
        validation_alias="NOTIFICATION_DB_URL",
    )
    smtp_host: str = Field(default="127.0.0.1", validation_alias="SMTP_HOST", description="The SMTP server (relay).")
    smtp_port: int = Field(default=1025, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_username: str | None = Field(default=None, validation_alias="SMTP_USERNAME", description="AUTH user, if any.")
    smtp_password: SecretStr | None = Field(default=None, validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(
        default=False, validation_alias="SMTP_STARTTLS", description="Upgrade the connection with STARTTLS (required)."
    )
    smtp_tls_verify: bool = Field(
        default=True,
        validation_alias="SMTP_TLS_VERIFY",
        description="Verify the SMTP server's certificate (false only for mail-fake's self-signed one).",
    )
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, validation_alias="SMTP_TIMEOUT_SECONDS")
    mail_from: str = Field(
        default="Spawnpoint <no-reply@spawnpoint.localhost>",
        validation_alias="MAIL_FROM",
        description="The From header (and, its address, the envelope sender).",
    )
    message_id_domain: str = Field(
        default="spawnpoint.localhost",
        validation_alias="MAIL_MESSAGE_ID_DOMAIN",
        description="The right-hand side of every Message-ID (a domain the operator owns).",
    )
    operator_email: str = Field(
        default="operator@spawnpoint.localhost",
        validation_alias="OPERATOR_EMAIL",
        description="Who is told about disputes.",
    )
    notify_order_placed: bool = Field(
        default=False,
        validation_alias="NOTIFY_ORDER_PLACED",
        description="Also e-mail an order confirmation when an order is placed (before payment).",
    )
    panel_url: str = Field(default=DEVELOPMENT_PANEL_URL, validation_alias="PANEL_URL")
    panel_api_key: SecretStr = Field(default=SecretStr(DEVELOPMENT_PANEL_KEY), validation_alias="PANEL_API_KEY")
    panel_public_url: str | None = Field(
        default=None,
        validation_alias="PANEL_PUBLIC_URL",
        description="The panel's address as customers reach it, for the link in e-mails (default PANEL_URL).",
    )
    retry_delays: str = Field(
        default="10,60,300,1800,7200",
        validation_alias="NOTIFICATION_RETRY_DELAYS",
        description="Seconds before each retry of a 4xx or a connection error; past the last, dead-lettered.",
    )
    rate_limit_per_hour: int = Field(
        default=30,
        ge=1,
        validation_alias="NOTIFICATION_RATE_LIMIT_PER_HOUR",
        description="E-mails one address gets per hour at most; more wait (none is dropped).",
    )
    send_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        validation_alias="NOTIFICATION_SEND_LEASE_SECONDS",
        description="A message being sent by a process that died is sent again after this long.",
    )
    sender_poll_seconds: float = Field(default=1.0, gt=0, validation_alias="NOTIFICATION_SENDER_POLL_SECONDS")
    sender_batch_size: int = Field(default=20, ge=1, le=500, validation_alias="NOTIFICATION_SENDER_BATCH_SIZE")
    test_pause_after_accept: str | None = Field(
        default=None,
        validation_alias="NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT",
        description="Tests only: 'ADDRESS=FILE': once the SMTP server accepted a message to ADDRESS, write its "
        "Message-ID to FILE and stop before marking it sent (until killed). Once per FILE. Refused in production.",
    )

    @property
    def panel_link_base(self) -> str:
        return (self.panel_public_url or self.panel_url).rstrip("/")

    def development_defaults_in_use(self) -> list[str]:
        used = super().development_defaults_in_use()
        if not self.smtp_starttls:
            used.append("SMTP_STARTTLS (off: e-mails would cross the network in clear)")
        if not self.smtp_tls_verify:
            used.append("SMTP_TLS_VERIFY (off: any certificate is accepted)")
        if self.panel_url.rstrip("/") == DEVELOPMENT_PANEL_URL:
            used.append("PANEL_URL (the panel stand-in's address)")
        if self.panel_api_key.get_secret_value() == DEVELOPMENT_PANEL_KEY:
            used.append("PANEL_API_KEY (the panel stand-in's key)")
        if self.message_id_domain.endswith(".localhost") or self.mail_from.endswith(".localhost>"):
            used.append("MAIL_FROM / MAIL_MESSAGE_ID_DOMAIN (a .localhost domain)")
        if self.test_pause_after_accept:
            used.append("NOTIFICATION_TEST_PAUSE_AFTER_ACCEPT (a test hook)")
        return used
