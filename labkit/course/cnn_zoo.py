"""The benchmark CNNs of lesson 05b that Keras Applications does not ship, and what they cost in int8.

Keras builds VGG16, InceptionV3, ResNet50, MobileNet, MobileNetV2 and DenseNet121 with
``weights=None`` (the architecture only: nothing is downloaded). AlexNet and SqueezeNet are not in
``keras.applications``; they are a few lines each, here, as their papers define them:

- :func:`alexnet` — Krizhevsky, Sutskever, Hinton (NeurIPS 2012), the single-tower version without
  the two-GPU grouping, 227 x 227 input: 62,378,344 parameters;
- :func:`squeezenet` — Iandola et al., *SqueezeNet: AlexNet-level accuracy with 50x fewer parameters
  and <0.5MB model size* (2016), version 1.1 (the reference implementation's cheaper variant):
  1,235,496 parameters;
- :func:`mobilenet_v1_block`, :func:`mobilenet_v2_block` — one block of each MobileNet, to compare
  the depthwise-separable block (Howard et al. 2017) with the inverted residual and linear
  bottleneck (Sandler et al., CVPR 2018);
- :func:`int8_weight_bytes` — the flash an int8 model needs for its weights: one byte per weight,
  four per bias (int32), batch normalisation folded into the layer before it (so it costs nothing).
"""

from __future__ import annotations

from labkit.errors import LabkitError
from labkit.keras import keras

__all__ = ["alexnet", "squeezenet", "mobilenet_v1_block", "mobilenet_v2_block", "int8_weight_bytes"]

L = keras.layers


def alexnet(input_shape=(227, 227, 3), classes: int = 1000) -> keras.Model:
    """AlexNet: five convolutions (11x11 stride 4, 5x5, three 3x3), three max-pools, three dense layers."""
    i = keras.Input(input_shape)
    x = L.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(i)
    x = L.MaxPooling2D(3, 2)(x)
    x = L.Conv2D(256, 5, padding="same", activation="relu", name="conv2")(x)
    x = L.MaxPooling2D(3, 2)(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = L.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = L.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = L.MaxPooling2D(3, 2)(x)
    x = L.Flatten()(x)
    x = L.Dense(4096, activation="relu", name="fc6")(x)
    x = L.Dense(4096, activation="relu", name="fc7")(x)
    return keras.Model(i, L.Dense(classes, activation="softmax", name="fc8")(x), name="alexnet")


def _fire(x, squeeze: int, expand: int, name: str):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expands side by side, concatenated."""
    s = L.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze")(x)
    e1 = L.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(s)
    e3 = L.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(s)
    return L.Concatenate(name=f"{name}_concat")([e1, e3])


def squeezenet(input_shape=(224, 224, 3), classes: int = 1000) -> keras.Model:
    """SqueezeNet 1.1: fire modules, no dense layer — a 1x1 convolution to the classes, then global average pooling."""
    i = keras.Input(input_shape)
    x = L.Conv2D(64, 3, strides=2, activation="relu", name="conv1")(i)
    x = L.MaxPooling2D(3, 2)(x)
    x = _fire(x, 16, 64, "fire2")
    x = _fire(x, 16, 64, "fire3")
    x = L.MaxPooling2D(3, 2)(x)
    x = _fire(x, 32, 128, "fire4")
    x = _fire(x, 32, 128, "fire5")
    x = L.MaxPooling2D(3, 2)(x)
    for n, (s, e) in enumerate([(48, 192), (48, 192), (64, 256), (64, 256)], start=6):
        x = _fire(x, s, e, f"fire{n}")
    x = L.Conv2D(classes, 1, activation="relu", name="conv10")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Softmax()(x), name="squeezenet_1_1")


def mobilenet_v1_block(input_shape, filters: int, name: str = "mobilenet_v1_block") -> keras.Model:
    """Depthwise-separable block: 3x3 depthwise, BN, ReLU6, then 1x1 pointwise to ``filters``, BN, ReLU6."""
    i = keras.Input(input_shape)
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(i)
    x = L.ReLU(6.0)(L.BatchNormalization(name="depthwise_bn")(x))
    x = L.Conv2D(filters, 1, use_bias=False, name="pointwise")(x)
    x = L.ReLU(6.0)(L.BatchNormalization(name="pointwise_bn")(x))
    return keras.Model(i, x, name=name)


def mobilenet_v2_block(input_shape, filters: int, expansion: int = 6, name: str = "mobilenet_v2_block") -> keras.Model:
    """Inverted residual with linear bottleneck: 1x1 expand (x ``expansion``), BN, ReLU6, 3x3 depthwise, BN,
    ReLU6, 1x1 project to ``filters``, BN, *no* activation; the input added back when the shapes agree."""
    if expansion < 1:
        raise LabkitError(f"expansion must be >= 1, got {expansion}")
    i = keras.Input(input_shape)
    wide = input_shape[-1] * expansion
    x = L.Conv2D(wide, 1, use_bias=False, name="expand")(i)
    x = L.ReLU(6.0)(L.BatchNormalization(name="expand_bn")(x))
    x = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = L.ReLU(6.0)(L.BatchNormalization(name="depthwise_bn")(x))
    x = L.Conv2D(filters, 1, use_bias=False, name="project")(x)
    x = L.BatchNormalization(name="project_bn")(x)  # linear: no ReLU on the thin output
    if filters == input_shape[-1]:
        x = L.Add(name="residual")([i, x])
    return keras.Model(i, x, name=name)


def int8_weight_bytes(model: keras.Model) -> int:
    """Bytes of flash for the weights of ``model`` in full int8: 1 per kernel weight, 4 per bias (int32).

    Batch normalisation adds nothing: the converter folds it into the convolution or dense layer
    before it, which then gets a bias (``c_out`` int32 values) if it had none. Layers without weights
    (pooling, activations, concatenation) cost no flash for weights.
    """
    total = 0
    for layer in _leaf_layers(model):
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense", "DepthwiseConv2D", "Conv1D", "SeparableConv2D"):
            kernels = [w for w in layer.weights if "kernel" in w.name]
            total += sum(int(w.shape.num_elements()) for w in kernels)
            out = layer.output_shape[-1] if not isinstance(layer.output_shape, list) else layer.output_shape[0][-1]
            total += 4 * int(out)  # the bias, its own or folded from the batch normalisation after it
        elif kind == "BatchNormalization":
            continue  # folded
        elif layer.weights:
            raise LabkitError(f"int8_weight_bytes does not know how {kind} layer {layer.name!r} is stored in int8")
    return total


def _leaf_layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer
