module example.com/payment-service/api

go 1.22

require (
	github.com/google/uuid v1.6.0
	golang.org/x/net v0.21.0
)

require golang.org/x/text v0.14.0 // indirect
