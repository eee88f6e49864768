"""The shipped default model of Dream-DoomTakeCover-v0 (data only: model.json + model.safetensors)."""
