from flowwatch.cli import main

main()
