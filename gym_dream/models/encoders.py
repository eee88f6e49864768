"""The "V" of World Models: a conv VAE for 64x64x3 frames and a standardising encoder for vectors.

Both map model-input observations to a latent ``z`` and back. ``encode`` returns the posterior
mean and log-variance; a dream is started and filtered with the mean (deterministic), while the
MDN-RNN is trained on samples, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_encoder(channels: tuple[int, ...]) -> nn.Sequential:
    """64x64x3 -> four stride-2 4x4 convs -> flat (channels[-1] * 2 * 2), as in World Models and PlaNet."""
    c1, c2, c3, c4 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c1, c2, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c2, c3, 4, stride=2), nn.ReLU(),
        nn.Conv2d(c3, c4, 4, stride=2), nn.ReLU(),
        nn.Flatten(),
    )


def conv_decoder(channels: tuple[int, ...], sigmoid: bool) -> nn.Sequential:
    """(B, 4 * channels[-1], 1, 1) -> four transposed convs -> (B, 3, 64, 64) (in [0, 1] with ``sigmoid``)."""
    c1, c2, c3, c4 = channels
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(4 * c4, c3, 5, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c3, c2, 5, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 6, stride=2), nn.ReLU(),
        nn.ConvTranspose2d(c1, 3, 6, stride=2),
    ]
    if sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


class ConvVAE(nn.Module):
    """World Models' conv VAE: four stride-2 convs (64 -> 2x2), z, four transposed convs back to 64x64.

    Input: (B, 64, 64, 3) uint8 or float in [0, 1] channels-last; output of ``decode``: float in [0, 1].
    """

    def __init__(self, z_dim: int = 32, channels: tuple[int, ...] = (32, 64, 128, 256), image_size: int = 64):
        super().__init__()
        if image_size != 64:
            raise ValueError(f"ConvVAE is built for 64x64 frames, got image_size={image_size}; set preprocessing size to [64, 64].")
        c4 = channels[-1]
        self.z_dim = z_dim
        self.encoder = conv_encoder(channels)
        flat = c4 * 2 * 2
        self.mu = nn.Linear(flat, z_dim)
        self.logvar = nn.Linear(flat, z_dim)
        self.decoder_in = nn.Linear(z_dim, 4 * c4)
        self.decoder = conv_decoder(channels, sigmoid=True)

    @staticmethod
    def to_input(frames: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 or [0, 1] float, channels-last -> (B, 3, H, W) float in [0, 1]."""
        x = frames.permute(0, 3, 1, 2)
        return x.float().div_(255.0) if frames.dtype == torch.uint8 else x.float()

    def encode(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.to_input(frames))
        return self.mu(h), self.logvar(h).clamp(-12.0, 6.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z -> (B, 64, 64, 3) float in [0, 1], channels-last."""
        x = self.decoder(self.decoder_in(z)[..., None, None])
        return x.permute(0, 2, 3, 1)

    def loss(self, frames: torch.Tensor, kl_tolerance: float = 0.5, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-image reconstruction (sum of squared errors) + KL with World Models' free bits."""
        mu, logvar = self.encode(frames)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = self.decode(z)
        target = self.to_input(frames).permute(0, 2, 3, 1)
        rec = F.mse_loss(recon, target, reduction="none").flatten(1).sum(1).mean()
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1)
        kl_loss = torch.clamp(kl, min=kl_tolerance * self.z_dim).mean()
        return {"loss": rec + kl_loss, "reconstruction": rec, "kl": kl.mean()}


#: the smallest std the vector standardiser is fitted with (a constant dimension); a stored std below it (0, negative) is
#: refused at load (:func:`gym_dream.checkpoint.load_model`): ``x / 0`` would give the agent inf observations
STD_FLOOR = 1e-6


def fit_standardizer(mean: torch.Tensor, std: torch.Tensor, observations: torch.Tensor) -> None:
    """The one vector standardiser's statistics, fitted in place: per-dimension mean and std (floored at :data:`STD_FLOOR`)."""
    with torch.no_grad():
        mean.copy_(observations.float().mean(0))
        std.copy_(observations.float().std(0).clamp_min(STD_FLOOR))


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x.float() - mean) / std


def unstandardize(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return z * std + mean


class StandardizeEncoder(nn.Module):
    """For low-dimensional vector observations: z = (x - mean) / std, exactly invertible.

    A pixel VAE is the wrong tool for CartPole's four numbers; standardising keeps every bit of the
    state, is deterministic, and puts each dimension on the scale the MDN-RNN learns best. ``mean``
    and ``std`` are buffers fitted from the training data and saved with the weights (the RSSM
    standardises its vector observations with the same functions).
    """

    def __init__(self, obs_dim: int):
        super().__init__()
        self.z_dim = obs_dim
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))

    def fit(self, observations: torch.Tensor) -> None:
        fit_standardizer(self.mean, self.std, observations)

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = standardize(obs, self.mean, self.std)
        return mu, torch.full_like(mu, -30.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return unstandardize(z, self.mean, self.std)
