from mnist_exp.train import cli

cli()
