"""Prints the TensorFlow/Keras figures that KerasReferenceTests compares Gantry's DCGAN step with.

Runs the seed's training step (../shared/anchors/tf_seed_gan_train.py's dcgan `step`, dropout
set to 0 so that no masks need matching) from the parameters, images and noise Gantry used:

    GANTRY_KERAS_REFERENCE_DIR=/tmp/kr swift test --filter KerasReferenceTests  # writes them
    python3 Tests/GANTests/KerasReference/dcgan_steps.py /tmp/kr                # prints the figures

Needs `pip install tensorflow-cpu==2.21.0`. The noise is Gantry's counter-based stream
(Sources/Kernels/Random.swift), ported below, so nothing but the initial checkpoint and the
images travels.
"""
import json, os, struct, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

M64 = (1 << 64) - 1
def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)
def stream_key(seed, *path):
    k = mix(seed ^ 0x6A09E667F3BCC909)
    for p in path: k = mix(k ^ mix((p + 0x9E3779B97F4A7C15) & M64))
    return k
def bits(key, i): return mix((key + ((i + 1) * 0x9E3779B97F4A7C15)) & M64)
def normals(key, n):
    out = np.empty(n, np.float32)
    for i in range(n):
        b = bits(key, i)
        u1 = ((b >> 32) + 1.0) / 4294967296.0; u2 = (b & 0xFFFFFFFF) / 4294967296.0
        out[i] = np.float32(np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2))
    return out
def unit_floats(key, n): return np.array([(bits(key, i) >> 40) / 16777216.0 for i in range(n)], np.float32)

def load_safetensors(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; header = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}, header["__metadata__"]

folder = sys.argv[1]
t0, meta = load_safetensors(os.path.join(folder, "initial.safetensors"))
config = json.loads(meta["gantry.configuration"])
batch, seed = config["batchSize"], config["seed"]
real = np.fromfile(os.path.join(folder, "real.bin"), np.float32).reshape(-1, batch, 28, 28, 1)
steps = real.shape[0]

G = keras.Sequential([keras.Input((100,)), layers.Dense(7*7*256, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
    layers.Reshape((7, 7, 256)), layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
    layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(),
    layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation="tanh")])
D = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(64, 5, strides=2, padding="same"), layers.LeakyReLU(), layers.Dropout(0.0),
    layers.Conv2D(128, 5, strides=2, padding="same"), layers.LeakyReLU(), layers.Dropout(0.0), layers.Flatten(), layers.Dense(1)])
# Gantry's tensor names are "<network>.<layer index>.<weight>", with Keras's weight names.
all_weights = [(w, f"{network}.{i}.{w.name}") for network, model in (("generator", G), ("discriminator", D))
               for i, layer in enumerate(model.layers) for w in layer.weights]
for w, name in all_weights: w.assign(t0[name].reshape(w.shape))

bce = keras.losses.BinaryCrossentropy(from_logits=True)
gopt = keras.optimizers.Adam(config["generatorOptimizer"]["learningRate"], beta_1=config["generatorOptimizer"]["beta1"])
dopt = keras.optimizers.Adam(config["discriminatorOptimizer"]["learningRate"], beta_1=config["discriminatorOptimizer"]["beta1"])
def step(imgs, z):
    with tf.GradientTape() as gt, tf.GradientTape() as dt:
        fake = G(z, training=True)
        ro, fo = D(imgs, training=True), D(fake, training=True)
        gl = bce(tf.ones_like(fo), fo); dl = bce(tf.ones_like(ro), ro) + bce(tf.zeros_like(fo), fo)
    gopt.apply_gradients(zip(gt.gradient(gl, G.trainable_variables), G.trainable_variables))
    dopt.apply_gradients(zip(dt.gradient(dl, D.trainable_variables), D.trainable_variables)); return gl, dl

DISCRIMINATOR_NOISE = 2
losses = []
for s in range(steps):
    z = normals(stream_key(seed, DISCRIMINATOR_NOISE, s), batch * 100).reshape(batch, 100)
    gl, dl = step(tf.constant(real[s]), tf.constant(z))
    losses.append((float(gl), float(dl)))
print("    static let losses: [(generator: Double, discriminator: Double)] = [")
for g, d in losses: print(f"        ({g:.6f}, {d:.6f}),")
print("    ]")
# Each tensor's change over the run: its norm, and its projection on a fixed random direction
# (uniform in [-1, 1) from RandomStream(seed: 99), one value per element).
print("    static let changes: [String: (norm: Double, projection: Double)] = [")
for w, name in all_weights:
    change = (w.numpy().reshape(-1).astype(np.float64) - t0[name].reshape(-1).astype(np.float64))
    direction = unit_floats(stream_key(99), change.size).astype(np.float64) * 2 - 1
    print(f'        "{name}": ({np.linalg.norm(change):.6e}, {float(change @ direction):.6e}),')
print("    ]")
