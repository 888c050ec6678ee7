"""Sources: readers that turn input files into raw rows and the stages that make documents of them."""
