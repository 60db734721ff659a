from fprt.cli import main

main()
