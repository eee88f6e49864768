"""The shipped default model of Dream-CheetahRun-v0: PlaNet's RSSM of dm_control/cheetah-run-v0 ({'obs': 'state'}), trained by the PlaNet loop (data only: model.json + model.safetensors)."""
