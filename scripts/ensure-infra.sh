#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on their ports. Starts them when they are installed but stopped;
# otherwise stops with a message that says exactly what is missing.
set -uo pipefail
PGHOST=${SPAWNPOINT_PG_HOST:-127.0.0.1}; PGPORT=${SPAWNPOINT_PG_PORT:-5432}
AMQP_HOST=${SPAWNPOINT_AMQP_HOST:-127.0.0.1}; AMQP_PORT=${SPAWNPOINT_AMQP_PORT:-5672}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() { # host port seconds
  for _ in $(seq 1 "$3"); do port_open "$1" "$2" && return 0; sleep 1; done; return 1; }

if ! port_open "$PGHOST" "$PGPORT"; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "==> PostgreSQL is not answering on $PGHOST:$PGPORT; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  wait_port "$PGHOST" "$PGPORT" 30 || {
    echo "ERROR: PostgreSQL is not running on $PGHOST:$PGPORT and could not be started." >&2
    echo "       Install PostgreSQL 15 (Debian: apt-get install postgresql) with trust auth for user postgres," >&2
    echo "       or point ORDER_DB_URL / PAYMENT_DB_URL / PROVISIONER_DB_URL / STATUS_DB_URL at a running server." >&2
    exit 1; }
fi
if ! port_open "$AMQP_HOST" "$AMQP_PORT"; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "==> RabbitMQ is not answering on $AMQP_HOST:$AMQP_PORT; starting it"
    rabbitmq-server -detached || true
  fi
  wait_port "$AMQP_HOST" "$AMQP_PORT" 60 || {
    echo "ERROR: RabbitMQ is not running on $AMQP_HOST:$AMQP_PORT and could not be started." >&2
    echo "       Install RabbitMQ >= 3.10 (Debian: apt-get install rabbitmq-server), or set BROKER_URL." >&2
    exit 1; }
fi
