"""The shipped default model of Dream-CarRacing-v0 (data only: model.json + model.safetensors)."""
