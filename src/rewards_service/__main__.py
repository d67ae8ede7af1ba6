from rewards_service.server import main

main()
