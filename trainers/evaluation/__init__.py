"""How good an agent or a dream is: dream and real scores through one rollout, the calibrated temperature, pooled
returns and videos."""
