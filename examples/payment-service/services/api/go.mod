module example.com/payment-service/api

go 1.22
