"""Packaging for simpairs.

``install_requires`` is what a Beam worker needs (Dataflow installs it through
``--setup_file ./setup.py``); torch and plotting live in extras so workers stay small.
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="simpairs",
    version="0.1.0",
    description=(
        "Chinese pseudo-parallel similar-sentence corpora with Apache Beam, "
        "and a RoFormer-Sim (SimBERTv2) trainer"
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["pipelines", "pipelines.*", "similarity", "similarity.*",
                                    "model", "model.*"]),
    package_data={"pipelines": ["data/*.jsonl", "data/*.md"]},
    install_requires=[
        "apache-beam>=2.77,<3",
        "jieba>=0.42",
        "datasketch>=2.0",  # MinHash(scheme="affine32"), used by similarity.candidates
        "rapidfuzz>=3.0",  # Levenshtein distance of the near-copy pair filter
        "pyarrow>=14",
        "zstandard>=0.21",  # checked .zst decompression of inputs (pipelines.io)
        "numpy>=1.24",
        "tqdm>=4.60",
    ],
    extras_require={
        "train": ["torch>=2.3", "safetensors>=0.4"],
        "analysis": ["matplotlib>=3.7", "scipy>=1.10"],
        "gcp": ["apache-beam[gcp]>=2.77,<3"],
        "test": [
            "pytest>=8",
            "hypothesis>=6.100",
            "transformers>=4.40",
            "matplotlib>=3.7",
            "scipy>=1.10",
            "ruff>=0.5",
            "duckdb>=1.0",  # tests read outputs as a client would (tests/test_faults_output.py)
        ],
    },
)
