# PyTorch eager baseline for bench/ganGpuRun.sh: THIS project's models (shared/gan, shared/nn) at the
# benchmark's size (bench/ganBench.ts ganConfigFor), one step = one discriminator/critic update and one
# generator update (WGAN-GP with nCritic 1, as in the WebGPU benchmark), timed on the GPU.
#   python3 torch_gan.py STEPS GAN DISC BATCH SIZE      GAN acgan|wgan-gp, DISC cnn|vit
# Prints one line: RESULT torch-gan {"gan":..,"disc":..,"size":..,"batch":..,"msPerStep":..,"imgsPerSec":..}
# Models, as in this project:
# - generator: dense z -> (s/8, s/8, 128) times a class embedding; 3 x [upsample 2x, conv 3x3 (128, 64, 32),
#   batch norm (eps 1e-3, Keras momentum 0.8), LeakyReLU 0.2]; conv 3x3 -> 3, tanh.
# - CNN discriminator: 4 x [conv 3x3 stride 2 'same' (32, 64, 128, 256), LeakyReLU 0.2, dropout 0.25]; as the
#   WGAN-GP critic no dropout and layer norm over channels after convs 2-4 (before the LeakyReLU).
# - ViT discriminator: patch 8 conv embedding to 96, class token, position embedding, 4 pre-norm blocks
#   (4 heads, MLP ratio 4, exact GELU), final layer norm, the class token's features; dropout 0.25 on the
#   features for ACGAN.
# - heads: ACGAN real/fake logit + classifier; WGAN-GP score + projection <E[y], h>.
# - losses: ACGAN BCE + CE (Adam 2e-4, betas 0.5/0.999); WGAN-GP E[D(fake)] - E[D(real)] + 10 GP (Adam 1e-4,
#   betas 0/0.9), the penalty through torch.autograd.grad(create_graph=True).
# TensorFlow's 'same' padding for stride 2 on even sizes pads 0 before and 1 after; PyTorch's padding=1 pads
# 1 on both sides: the arithmetic is the same up to one border row, which does not change the cost.
import json, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

def main():
    steps, gan, disc, batch, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    if gan not in ('acgan', 'wgan-gp') or disc not in ('cnn', 'vit'):
        sys.exit('usage: torch_gan.py STEPS acgan|wgan-gp cnn|vit BATCH SIZE')
    dev, latent, nc, s0, critic = 'cuda', 100, 2, size // 8, gan == 'wgan-gp'

    class G(nn.Module):
        def __init__(s):
            super().__init__()
            s.fc, s.emb = nn.Linear(latent, s0 * s0 * 128), nn.Embedding(nc, s0 * s0 * 128)
            layers, cin = [], 128
            for ch in (128, 64, 32):
                layers += [nn.Upsample(scale_factor=2), nn.Conv2d(cin, ch, 3, padding=1), nn.BatchNorm2d(ch, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2)]
                cin = ch
            layers += [nn.Conv2d(cin, 3, 3, padding=1), nn.Tanh()]
            s.net = nn.Sequential(*layers)
        def forward(s, z, y):
            return s.net((s.fc(z) * s.emb(y)).view(-1, 128, s0, s0))

    class ChannelNorm(nn.Module):  # layer norm over channels at every pixel (NHWC last axis in tfjs)
        def __init__(s, ch):
            super().__init__(); s.ln = nn.LayerNorm(ch, eps=1e-5)
        def forward(s, x):
            return s.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    class Cnn(nn.Module):
        def __init__(s):
            super().__init__()
            layers, cin = [], 3
            for i, ch in enumerate((32, 64, 128, 256)):
                layers.append(nn.Conv2d(cin, ch, 3, stride=2, padding=1))
                if critic and i > 0: layers.append(ChannelNorm(ch))
                layers.append(nn.LeakyReLU(0.2))
                if not critic: layers.append(nn.Dropout(0.25))
                cin = ch
            s.net, s.dim = nn.Sequential(*layers, nn.Flatten()), 256 * (size // 16) ** 2
        def forward(s, x):
            return s.net(x)

    class Block(nn.Module):
        def __init__(s, dim, heads):
            super().__init__()
            s.n1, s.att, s.n2 = nn.LayerNorm(dim), nn.MultiheadAttention(dim, heads, batch_first=True), nn.LayerNorm(dim)
            s.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))
        def forward(s, x):
            h = s.n1(x)
            x = x + s.att(h, h, h, need_weights=False)[0]
            return x + s.mlp(s.n2(x))

    class Vit(nn.Module):
        def __init__(s, patch=8, dim=96, depth=4, heads=4):
            super().__init__()
            tokens = (size // patch) ** 2
            s.embed = nn.Conv2d(3, dim, patch, stride=patch)
            s.cls, s.pos = nn.Parameter(torch.randn(1, 1, dim) * 0.02), nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
            s.blocks, s.norm, s.dim = nn.Sequential(*[Block(dim, heads) for _ in range(depth)]), nn.LayerNorm(dim), dim
            s.drop = nn.Dropout(0.0 if critic else 0.25)
        def forward(s, x):
            p = s.embed(x).flatten(2).transpose(1, 2)
            h = torch.cat([s.cls.expand(x.shape[0], -1, -1), p], 1) + s.pos
            return s.drop(s.norm(s.blocks(h))[:, 0])

    class D(nn.Module):
        def __init__(s):
            super().__init__()
            s.body = Cnn() if disc == 'cnn' else Vit()
            s.score = nn.Linear(s.body.dim, 1)
            if critic: s.proj = nn.Embedding(nc, s.body.dim)
            else: s.cls = nn.Linear(s.body.dim, nc)
        def forward(s, x, y):
            h = s.body(x)
            if critic: return s.score(h).squeeze(1) + (s.proj(y) * h).sum(1), None
            return s.score(h).squeeze(1), s.cls(h)

    g, d = G().to(dev), D().to(dev)
    lr, betas = (1e-4, (0.0, 0.9)) if critic else (2e-4, (0.5, 0.999))
    go, do = torch.optim.Adam(g.parameters(), lr, betas=betas), torch.optim.Adam(d.parameters(), lr, betas=betas)
    real = torch.rand(batch, 3, size, size, device=dev) * 2 - 1
    rl = torch.arange(batch, device=dev) % nc
    bce, ce = F.binary_cross_entropy_with_logits, F.cross_entropy

    def acgan_step():
        z = torch.randn(batch, latent, device=dev); fl = torch.randint(0, nc, (batch,), device=dev)
        fake = g(z, fl)
        vr, ar = d(real, rl); vf, af = d(fake.detach(), fl)
        dl = bce(vr, torch.ones_like(vr)) + bce(vf, torch.zeros_like(vf)) + ce(ar, rl) + ce(af, fl)
        do.zero_grad(); dl.backward(); do.step()
        vf, af = d(fake, fl); gl = bce(vf, torch.ones_like(vf)) + ce(af, fl)
        go.zero_grad(); gl.backward(); go.step()

    def wgan_step():
        z = torch.randn(batch, latent, device=dev)
        fake = g(z, rl).detach()
        eps = torch.rand(batch, 1, 1, 1, device=dev)
        xh = (eps * real + (1 - eps) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(d(xh, rl)[0].sum(), xh, create_graph=True)
        gp = ((grad.flatten(1).square().sum(1) + 1e-12).sqrt() - 1).square().mean() * 10
        dl = d(fake, rl)[0].mean() - d(real, rl)[0].mean() + gp
        do.zero_grad(); dl.backward(); do.step()
        z = torch.randn(batch, latent, device=dev); fl = torch.randint(0, nc, (batch,), device=dev)
        gl = -d(g(z, fl), fl)[0].mean()
        go.zero_grad(); gl.backward(); go.step()

    step = wgan_step if critic else acgan_step
    for _ in range(3): step()
    torch.cuda.synchronize(); t0 = time.perf_counter()
    for _ in range(steps): step()
    torch.cuda.synchronize(); ms = (time.perf_counter() - t0) * 1000 / steps
    print('RESULT torch-gan ' + json.dumps({'gan': gan, 'disc': disc, 'size': size, 'batch': batch, 'msPerStep': round(ms, 2), 'imgsPerSec': round(batch * 1000 / ms, 1),
                                            'gParams': sum(p.numel() for p in g.parameters()), 'dParams': sum(p.numel() for p in d.parameters()), 'torch': torch.__version__}), flush=True)

if __name__ == '__main__':
    main()
