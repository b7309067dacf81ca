"""tf.distribute strategies by name."""

import tensorflow as tf

STRATEGIES = ("mirrored", "default")


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices; must run before TensorFlow starts."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    if num_devices > 1:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def make_strategy(name):
    """'mirrored': all GPUs, else all logical CPUs; 'default': no distribution."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = (tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU"))
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    raise ValueError(f"--strategy={name}: expected one of {', '.join(STRATEGIES)}.")
