from lstmcast.cli.main import main

main()
