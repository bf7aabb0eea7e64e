"""Fashion-MNIST: its files, their checksums, and where to get them."""

from .debian import INSTALLED, PACKAGE, fetch_from_debian
from .ensure import DatasetSpec, Source
from .sources import torchvision_download

FASHION_MNIST = DatasetSpec(
    name="FashionMNIST",
    files={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    sources=(
        Source("torchvision download (Fashion-MNIST mirror)", torchvision_download("FashionMNIST")),
        Source(f"Debian package {PACKAGE} ({INSTALLED}, else apt-get download)", fetch_from_debian),
    ),
    fetch_command="python -m mnist_exp.data --dataset fashion_mnist",
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
)
