from rpi_async.cli import main

main()
