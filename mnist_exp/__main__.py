from mnist_exp.train import main

main()
