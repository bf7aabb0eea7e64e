"""`mnist-exp-report`: one table and a few plots that compare finished (and unfinished) runs."""
