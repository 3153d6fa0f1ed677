from mutator.cli import main

main()
