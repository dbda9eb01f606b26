from datafast.cli import main

main()
