"""restac_ros: ResTacVLA (Pi0_ResTac) policy on ROS 2.

The generated message modules (``restac_ros.msg``) are installed by rosidl into
site-packages while this package may be used from a source checkout; extending
``__path__`` lets both halves form one package, as in a colcon install.
"""

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)
