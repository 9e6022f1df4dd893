"""ai-trading: execution-realistic simulation, evaluation, RL and a durable OMS."""

__version__ = "0.1.0"
