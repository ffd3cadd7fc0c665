"""``make chaos``: a fault campaign over a production-like stack of its own.

N paid orders come from separate customer processes that retry like a patient frontend, while faults are
injected: every service SIGKILLed (the provisioner and payment-service more than once, one of them mid-burst),
RabbitMQ and PostgreSQL restarted and held down for a minute, panel 503 and 429 bursts, the panel down for
longer than the in-process retries, Wings committing a server then hanging, Stripe webhooks duplicated,
reordered and held back. A supervisor restarts a dead process within a couple of seconds, as an
orchestrator would. At the end an audit reads the stand-ins (the money and the servers) and the broker (the
dead-letter queues) and reports every way the promise could have been broken: orders lost (paid, no server,
no refund), servers doubled, wrong refunds, orders not terminal at the deadline, dead-lettered messages.

    make chaos                      # 200 orders, every fault
    make chaos ARGS="--orders 30 --quick"
"""
