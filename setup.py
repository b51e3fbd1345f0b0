from setuptools import find_packages, setup

setup(
    name="edge-sdk",
    version="0.1.0",
    description="Detector deployment for NVIDIA Jetson and CPUs: ONNX export, TensorRT engines, INT8, pruning, "
                "real-time camera detection",
    python_requires=">=3.8",
    packages=find_packages(include=["sdk", "sdk.*", "calibrators", "calibrators.*", "deploy", "deploy.*",
                                    "samples", "samples.*"]),
    include_package_data=True,
    package_data={"sdk": ["web/*.html", "web/*.js", "web/*.css"], "deploy": ["jetson/*", "container/*", "systemd/*"]},
    # The runtime: what a Jetson or a CPU box needs to run a model. No torch, no TensorFlow. OpenCV from pip only
    # off aarch64: on a Jetson pip's wheel would shadow JetPack's python3-opencv, the build with GStreamer (CSI
    # cameras, hardware decode); an aarch64 box that is not a Jetson installs opencv-python-headless itself.
    install_requires=["numpy", "opencv-python-headless; platform_machine != 'aarch64'", "onnx", "onnxruntime",
                      "pyyaml", "tqdm"],
    extras_require={
        "torch": ["torch", "torch-pruning>=1.4"],  # install torch==2.13.0 first on CPU machines
        "tf": ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0"],  # Keras export (pinned: tf2onnx lags TF releases)
        "jetson": ["cuda-python"],  # device memory for the TensorRT runner when pycuda is absent
        "dev": ["pytest", "pycocotools", "matplotlib", "onnxscript"],
        "triton": ["tritonclient[http,grpc]"],  # triton:// models; the server itself: python -m sdk triton-server
        "track": ["scipy"],  # --track: ByteTrack's assignment (scipy has aarch64 wheels; pulls only numpy)
        "video": ["av"],  # H.264 files and rtp:// through PyAV's bundled FFmpeg (leaves OpenCV alone)
    },
    entry_points={"console_scripts": ["build_engine=sdk.commands.build:main", "edge-sdk=sdk.cli:main",
                                    "edge-jetson-doctor=deploy.jetson.doctor:main",
                                    "edge-jetson-selftest=deploy.jetson.selftest:main"]},
)
