"""The shipped default model of Dream-WalkerWalk-v0: PlaNet's RSSM of dm_control/walker-walk-v0 ({'obs': 'state'}), trained by the PlaNet loop (data only: model.json + model.safetensors)."""
